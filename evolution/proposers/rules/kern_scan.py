"""placeholder"""
from evolution.proposers.rules.ir import Unsupported
def generate(ctx, region):
    raise Unsupported("scan kernels not written yet")
