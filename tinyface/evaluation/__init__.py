"""Evaluation protocols: verification on labelled pairs, identification, calibration.

* :mod:`~tinyface.evaluation.pairs` reads pair lists (LFW's files, CSV);
* :mod:`~tinyface.evaluation.embed` embeds their images once each, cached;
* :mod:`~tinyface.evaluation.metrics` ROC, AUC, EER, TAR at FAR, k-fold accuracy;
* :mod:`~tinyface.evaluation.verification` the pair protocol's report;
* :mod:`~tinyface.evaluation.identify` CMC, rank-k, rank-1 against distractors;
* :mod:`~tinyface.evaluation.calibrate` thresholds stored in the model's metadata;
* :mod:`~tinyface.evaluation.plot` the figures (optional matplotlib).

Only NumPy at run time; the command line is ``tinyface eval`` and ``tinyface calibrate``.
"""
