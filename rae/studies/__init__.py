"""Studies of the judge itself: how far it agrees with humans (and humans with each other), which program variants
help (ablations), why it disagrees (error analysis), and whether a seller's text can steer it (injection)."""
