"""HTTP in and out only: routers, auth dependency, body parsing, error mapping."""
