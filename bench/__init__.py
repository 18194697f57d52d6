"""`python -m bench`: speed and memory of the webhook, as medians and ratios against baselines.

Every figure is compared with a baseline measured in the same run, because the machine is noisy;
nothing here asserts on timings, it only reports.
"""
