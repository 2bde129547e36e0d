"""placeholder"""
from evolution.proposers.rules.ir import Unsupported
def generate(ctx, region):
    raise Unsupported("attention kernels not written yet")
