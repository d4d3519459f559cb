"""groktune cluster: sweeps on Ray clusters that Slurm or Kubernetes provide.

    cluster.slurm   SlurmConfig -> an sbatch script (Ray head + workers via srun, the sweep
                    driver on the head, pre-limit signal -> save, requeue, resume); sbatch/status
    cluster.k8s     K8sConfig -> a KubeRay RayJob (apiVersion ray.io/v1) running the sweep
    cluster.runtime the small steps those scripts run inside a job (wait-nodes, can-resume)

The CLI is orchestrator/cli/slurm.py (`groktune slurm submit|status`) and
orchestrator/cli/k8s.py (`groktune k8s render`).
"""
