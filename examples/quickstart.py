"""contdepth in one screen: a field, three schemes, several step counts, the continuous limit.

Run: python examples/quickstart.py
"""

import torch
from torch import nn

import contdepth as cd

torch.manual_seed(0)
# A field of 4 residual branches (block m owns t in [m, m+1)), small conv nets on 8x8 maps.
branches = [nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.Tanh(), nn.Conv2d(4, 4, 3, padding=1)) for _ in range(4)]
field = cd.Blocks(branches).double()
u0 = torch.randn(2, 4, 8, 8, dtype=torch.float64)

with torch.no_grad():
    reference = cd.odeint(field, u0, method="dopri5", rtol=1e-10, atol=1e-12)  # adaptive, block by block
    print(f"{'scheme':<9}{'steps/block':>12}{'max error':>12}")
    for scheme in ["euler", "midpoint", "rk4"]:
        for per_block in [1, 2, 4, 8]:
            flow = cd.Flow(field, scheme, steps=4 * per_block)  # 1 Euler step per block = a ResNet
            error = (flow(u0) - reference).abs().max().item()
            print(f"{scheme:<9}{per_block:>12}{error:>12.2e}")

    # LM-ResNet's two-step scheme converges to its modified equation (1 + k) u' = f(u).
    lm = cd.Flow(field, cd.schemes.get("lm2", k=-0.3, learnable=False), steps=4)
    limit = cd.odeint(lm, u0, rtol=1e-10, atol=1e-12)
    for per_block in [1, 8, 64]:
        error = (lm.refine(steps=4 * per_block)(u0) - limit).abs().max().item()
        print(f"lm2 (k=-0.3), {per_block:>2} steps/block: distance to the limit of (1+k)u'=f(u): {error:.2e}")
