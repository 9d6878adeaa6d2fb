"""A study on a bare, offline GPU machine that keeps nothing between commands (see README.md here).

``bash tools/offline/offline_gpu.sh start|watch|collect`` from a checkout (it runs
``python3 -m tools.offline``): set the machine up, run the GPU smoke tier, calibrate, start
``contdepth reproduce`` detached; watch it; pack its outputs into a few small files. Everything it
writes lives in one work folder (default ``runs/offline``). It needs the checkout: it runs
``benchmarks/throughput.py`` and the test suite, so it is not part of the installed package.
"""
