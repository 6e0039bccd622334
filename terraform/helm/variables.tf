variable "cluster_state_path" {
  description = "Path of terraform/cluster's state (local backend). Empty: ../cluster/terraform.tfstate beside this module. If that state is remote, change the terraform_remote_state in main.tf to its backend."
  type        = string
  default     = ""
}

variable "chart_path" {
  description = "Path of the smart-routing chart. Empty: ../../charts/smart-routing beside this module."
  type        = string
  default     = ""
}

variable "release_name" {
  description = "Helm release name."
  type        = string
  default     = "smart-routing"
}

variable "namespace" {
  description = "Namespace of the release (created if missing)."
  type        = string
  default     = "smart-routing"
}

variable "image_registry" {
  description = "Registry of the four images. Empty: the ECR registry terraform/cluster created."
  type        = string
  default     = ""
}

variable "image_tag" {
  description = "Tag of the four images, as pushed (see terraform/README.md)."
  type        = string
}

variable "worker_replicas" {
  description = "Worker pods (worker.replicas); at most one per GPU node with the default anti-affinity preference."
  type        = number
  default     = 2
}

variable "label_capacity" {
  description = "Models each worker keeps loaded (worker.labelCapacity)."
  type        = number
  default     = 2
}

variable "slots" {
  description = "Tasks each worker runs at once (worker.slots)."
  type        = number
  default     = 1
}

variable "model_server" {
  description = "worker.modelServer: triton (GPU nodes), embedded or none."
  type        = string
  default     = "triton"

  validation {
    condition     = contains(["triton", "embedded", "none"], var.model_server)
    error_message = "model_server must be triton, embedded or none."
  }
}

variable "triton_gpus" {
  description = "GPUs per Triton container (worker.triton.gpus)."
  type        = number
  default     = 1
}

variable "triton_image_tag" {
  description = "Triton image tag (worker.triton.image.tag). Empty: the chart's default."
  type        = string
  default     = ""
}

variable "routing_policy" {
  description = "dispatcher.routingPolicy: affinity, idle-first or random."
  type        = string
  default     = "affinity"

  validation {
    condition     = contains(["affinity", "idle-first", "random"], var.routing_policy)
    error_message = "routing_policy must be affinity, idle-first or random."
  }
}

variable "random_dispatch" {
  description = "dispatcher.randomDispatch: force the random policy."
  type        = bool
  default     = false
}

variable "dispatcher_replicas" {
  description = "dispatcher.replicas: dispatcher replicas (null: 2 with Redis, else 1; more than 1 needs Redis)."
  type        = number
  default     = null
}

variable "redis_enabled" {
  description = "redis.enabled: run a Redis StatefulSet for the dispatcher replicas (REDIS_URL)."
  type        = bool
  default     = false
}

variable "redis_url" {
  description = "redis.url: redis://host:port of your own Redis instead (e.g. ElastiCache, highly available). Empty: none."
  type        = string
  default     = ""
}

variable "demo_models" {
  description = "Generate the demo models label-1 ... label-N into the model repository (0: none)."
  type        = number
  default     = 5
}

variable "api_keys" {
  description = "Producer API keys (auth.apiKeys). Empty: the producer API is open inside the VPC."
  type        = list(string)
  default     = []
  sensitive   = true
}

variable "worker_token" {
  description = "Worker token (auth.workerToken). Empty: the chart generates one."
  type        = string
  default     = ""
  sensitive   = true
}

variable "hf_token" {
  description = "Hugging Face token for the uploader (uploader.hfToken). Empty: anonymous."
  type        = string
  default     = ""
  sensitive   = true
}

variable "install_nvidia_device_plugin" {
  description = "Install NVIDIA's device plugin so GPU nodes advertise nvidia.com/gpu (skip if the cluster already runs it or the GPU operator)."
  type        = bool
  default     = true
}

variable "nvidia_device_plugin_version" {
  description = "Version of the nvidia-device-plugin chart."
  type        = string
  default     = "0.17.1"
}

variable "extra_values" {
  description = "More chart values (a map, merged last), e.g. { dispatcher = { service = { type = \"ClusterIP\" } } }."
  type        = any
  default     = {}
}
