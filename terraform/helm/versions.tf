terraform {
  required_version = ">= 1.5.0"

  required_providers {
    # helm 3.x changed the provider's kubernetes block to an attribute; this configuration uses 2.x.
    helm = {
      source  = "hashicorp/helm"
      version = "~> 2.17"
    }
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = "~> 2.36"
    }
  }
}
