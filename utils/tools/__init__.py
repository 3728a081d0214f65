"""Tools: the course's command-line helpers (nothing here is imported by a notebook's lesson code). They build on
every package below them (:mod:`utils.lm`, :mod:`utils.sft`, :mod:`utils.rl`, :mod:`utils.prefs`, ...).

* ``python -m utils.tools.run_course`` - run notebooks with papermill, write ``build/report.md`` (``make course``);
* ``python -m utils.tools.nbclean`` - strip a notebook's run state (papermill metadata, timings, widget state) for commit;
* ``python -m utils.tools.colab`` - write the bootstrap cell into every notebook; Colab badges;
* ``python -m utils.tools.bench`` - sampler speed, per-level baselines and memory of real architectures;
* ``python -m utils.tools.bench_grpo`` - the course's GRPO step time against TRL's ``GRPOTrainer``;
* ``python -m utils.tools.cell_memory`` - run a notebook cell by cell: each cell's peak memory and time;
* ``python -m utils.tools.scale`` - the SFT, DPO and GRPO recipes under ``accelerate launch`` (several GPUs).
"""
