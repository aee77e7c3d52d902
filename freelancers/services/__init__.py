"""Every change of state in the freelancers app; each module says what its functions guarantee."""
