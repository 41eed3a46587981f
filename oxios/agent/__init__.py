"""The agent spine: turn loop, tool dispatch, supervisor, budget, sessions, personas, spaces, resources."""
