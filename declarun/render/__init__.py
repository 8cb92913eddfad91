"""declarun.render: the stack written for other systems. Pure: values in, documents out.

* ``kubernetes``      ``declarun render --format kubernetes``: Deployments, StatefulSets,
                      Jobs, Services, claims, ConfigMaps and Secrets, and a report of what
                      Kubernetes cannot express
* ``kubernetes_pod``  the pod of one container: probes, resources, security, placement
"""
