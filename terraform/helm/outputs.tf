output "release" {
  description = "Name, namespace and chart version of the installed release."
  value = {
    name      = helm_release.smart_routing.name
    namespace = helm_release.smart_routing.namespace
    version   = helm_release.smart_routing.version
  }
}

output "dispatcher_service" {
  description = "The dispatcher's Service; its internal NLB address: kubectl get svc -n <namespace> <name>."
  value       = "${local.fullname}-dispatcher"
}

output "port_forward" {
  description = "Reach the dispatcher from this machine."
  value       = "kubectl port-forward -n ${var.namespace} svc/${local.fullname}-dispatcher 8080:8080"
}
