"Scoring: per-image metrics, evaluation of a checkpoint on a test split, statistics over seeds, and the gates explained."
