"pytest configuration for the tests exported from the notebooks."
import os
import fastcore.test

# fastcore's assertion helpers are named test_*; they are helpers, not tests
for _name in dir(fastcore.test):
    if _name.startswith("test") and callable(getattr(fastcore.test, _name)):
        getattr(fastcore.test, _name).__test__ = False

os.environ.setdefault("HF_HUB_OFFLINE", "1")   # tests never download weights
os.environ.setdefault("MPLBACKEND", "Agg")
