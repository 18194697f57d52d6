"""Day-2 commands over a kubeconfig: `check` (an install, a namespace, a workload file) and `entra-commands`
(what an Entra admin runs for the blueprints the cluster has). They read and dry-run; they never change the
cluster."""
