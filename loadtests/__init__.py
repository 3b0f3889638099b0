"""Load tests (Locust, `make loadtest`) and the benchmark (`make bench`) of the ser service.

Only `locustfile` imports locust, and it runs in a process of its own (locust's gevent patching
breaks after TensorFlow is imported); `clips` (request audio) is shared by it and the benchmark.
"""
