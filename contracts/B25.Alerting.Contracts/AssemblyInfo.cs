namespace B25.Alerting.Contracts;
