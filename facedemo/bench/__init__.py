"""Benchmarks that print figures and ratios measured in one run: the pipeline against facenet-pytorch's
naive loop, the gallery's scale, and the identification methods on real photos."""
