"The paper's study: the runner over methods, ablations and seeds, its tables, and the words generated from their intervals."
