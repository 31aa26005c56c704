"""One router per resource; functions/<group>/app.py picks the routers of its group."""
