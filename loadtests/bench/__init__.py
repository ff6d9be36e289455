"""``peaksim bench --loadgen``: the replay's speed against bare Locust (see ``loadgen``)."""
