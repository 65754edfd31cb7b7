"The networks: the radiomics stream and its gates, RadiomicNet, the baselines, and the registry that builds any of them by name."
