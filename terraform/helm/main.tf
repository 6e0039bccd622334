# Installs the smart-routing chart on the cluster terraform/cluster built, with values-eks.yaml and
# the values from this configuration's variables.

locals {
  cluster_state_path = var.cluster_state_path != "" ? var.cluster_state_path : "${path.module}/../cluster/terraform.tfstate"
  chart_path         = var.chart_path != "" ? var.chart_path : "${path.module}/../../charts/smart-routing"

  cluster        = data.terraform_remote_state.cluster.outputs
  image_registry = var.image_registry != "" ? var.image_registry : local.cluster.ecr_registry
  # The chart's resource-name prefix (its smart-routing.fullname helper).
  fullname = strcontains(var.release_name, "smart-routing") ? var.release_name : "${var.release_name}-smart-routing"
}

data "terraform_remote_state" "cluster" {
  backend = "local"

  config = {
    path = local.cluster_state_path
  }
}

# Short-lived tokens from the AWS CLI, so nothing long-lived lands in the state.
provider "kubernetes" {
  host                   = local.cluster.cluster_endpoint
  cluster_ca_certificate = base64decode(local.cluster.cluster_certificate_authority_data)

  exec {
    api_version = "client.authentication.k8s.io/v1beta1"
    command     = "aws"
    args        = ["eks", "get-token", "--cluster-name", local.cluster.cluster_name, "--region", local.cluster.region]
  }
}

provider "helm" {
  kubernetes {
    host                   = local.cluster.cluster_endpoint
    cluster_ca_certificate = base64decode(local.cluster.cluster_certificate_authority_data)

    exec {
      api_version = "client.authentication.k8s.io/v1beta1"
      command     = "aws"
      args        = ["eks", "get-token", "--cluster-name", local.cluster.cluster_name, "--region", local.cluster.region]
    }
  }
}

# ReadWriteMany storage on the cluster's EFS file system. Each claim gets an access point whose
# files belong to uid/gid 1000, the user our images (and Triton, under the chart's pod security
# context) run as.
resource "kubernetes_storage_class_v1" "efs" {
  metadata {
    name = "efs-sc"
  }

  storage_provisioner = "efs.csi.aws.com"
  reclaim_policy      = "Retain"

  parameters = {
    provisioningMode = "efs-ap"
    fileSystemId     = local.cluster.efs_file_system_id
    directoryPerms   = "700"
    uid              = "1000"
    gid              = "1000"
    basePath         = "/smart-routing"
  }
}

# Makes the GPU nodes advertise nvidia.com/gpu (the AL2 GPU AMI has the driver, not the plugin).
# The chart's defaults tolerate the nvidia.com/gpu taint.
resource "helm_release" "nvidia_device_plugin" {
  count = var.install_nvidia_device_plugin ? 1 : 0

  name             = "nvidia-device-plugin"
  repository       = "https://nvidia.github.io/k8s-device-plugin"
  chart            = "nvidia-device-plugin"
  version          = var.nvidia_device_plugin_version
  namespace        = "nvidia-device-plugin"
  create_namespace = true
}

resource "helm_release" "smart_routing" {
  name             = var.release_name
  chart            = local.chart_path
  namespace        = var.namespace
  create_namespace = true

  # Pulling the Triton image onto a fresh GPU node takes minutes.
  wait    = true
  timeout = 1800

  values = [
    file("${local.chart_path}/values-eks.yaml"),
    yamlencode({
      image = {
        registry = local.image_registry
        tag      = var.image_tag
      }
      dispatcher = {
        routingPolicy  = var.routing_policy
        randomDispatch = var.random_dispatch
        replicas       = var.dispatcher_replicas
      }
      redis = {
        enabled = var.redis_enabled
        url     = var.redis_url
      }
      worker = {
        replicas      = var.worker_replicas
        labelCapacity = var.label_capacity
        slots         = var.slots
        modelServer   = var.model_server
        triton        = { gpus = var.triton_gpus }
      }
      modelRepository = {
        demoModels = {
          enabled = var.demo_models > 0
          count   = max(var.demo_models, 1)
        }
      }
    }),
    yamlencode(var.extra_values),
  ]

  dynamic "set" {
    for_each = var.triton_image_tag != "" ? [var.triton_image_tag] : []
    content {
      name  = "worker.triton.image.tag"
      value = set.value
    }
  }

  # Tokens go in through set_sensitive so plans do not print them.
  dynamic "set_sensitive" {
    for_each = var.worker_token != "" ? [var.worker_token] : []
    content {
      name  = "auth.workerToken"
      value = set_sensitive.value
    }
  }

  dynamic "set_sensitive" {
    for_each = length(var.api_keys) > 0 ? [var.api_keys] : []
    content {
      name  = "auth.apiKeys"
      value = "{${join(",", set_sensitive.value)}}"
    }
  }

  dynamic "set_sensitive" {
    for_each = var.hf_token != "" ? [var.hf_token] : []
    content {
      name  = "uploader.hfToken"
      value = set_sensitive.value
    }
  }

  depends_on = [
    kubernetes_storage_class_v1.efs,
    helm_release.nvidia_device_plugin,
  ]
}
