"""The next batch: which unlabelled images to label next, and whether choosing them beats
drawing them at random on the user's own labelled data.

``strategies`` ranks a pool of unlabelled images by their frozen-backbone features and the
current head's probabilities (random, uncertainty, diversity, typical, hybrid); ``simulate``
replays labelling rounds on a labelled dataset whose training pool's labels are hidden, and
measures each strategy's holdout accuracy against the labels it spent, beside random's.
May import: base, data, models, store, engine.
"""
