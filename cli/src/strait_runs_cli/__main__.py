"""`python -m strait_runs_cli` runs the command line, as the `strait-runs` script does."""

from strait_runs_cli.main import main

main()
