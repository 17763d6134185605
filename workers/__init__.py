"""rq entry points and the worker process for tipline."""
