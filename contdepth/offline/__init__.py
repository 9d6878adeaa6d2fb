"""Working on an offline machine with a GPU that keeps nothing between commands.

``python3 -m contdepth.offline start|watch|collect`` (or ``scripts/offline_gpu.sh``): set the machine up,
run the GPU test tier, calibrate, start ``contdepth reproduce`` detached; watch it; pack its outputs
into a few small files. Everything it writes lives in one work folder (default ``runs/offline``).
"""
