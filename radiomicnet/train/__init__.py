"Training: the composite loss and the fastai Learner with its protocols, checkpoints and resume."
