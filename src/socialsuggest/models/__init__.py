"""Model families (tags, hashtags, replies, trends).

Each family is a pure fit/predict/evaluate unit: it takes DataFrames and returns
picklable objects and numbers, and does no file, network or MLflow I/O, so the same
object trains in a worker process, travels in an MLflow artifact and serves requests.
"""
