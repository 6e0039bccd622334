variable "region" {
  description = "AWS region of the cluster."
  type        = string
  default     = "us-east-1"
}

variable "cluster_name" {
  description = "EKS cluster name; also the prefix of the VPC, EFS and ECR names."
  type        = string
  default     = "smart-routing"
}

variable "kubernetes_version" {
  description = "EKS Kubernetes version. The chart needs 1.29 or later (native sidecars); EKS ships AL2 AMIs (gpu_ami_type AL2_x86_64_GPU) up to 1.32."
  type        = string
  default     = "1.32"
}

variable "vpc_cidr" {
  description = "CIDR block of the VPC."
  type        = string
  default     = "10.42.0.0/16"
}

variable "availability_zones" {
  description = "How many availability zones the VPC spans (2 or 3)."
  type        = number
  default     = 2

  validation {
    condition     = var.availability_zones >= 2 && var.availability_zones <= 3
    error_message = "availability_zones must be 2 or 3."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all private subnets (cheaper) instead of one per zone."
  type        = bool
  default     = true
}

variable "cpu_instance_types" {
  description = "Instance types of the CPU node group (dispatcher, log collector, uploader)."
  type        = list(string)
  default     = ["m6i.large"]
}

variable "cpu_node_count" {
  description = "Desired, minimum and maximum size of the CPU node group."
  type        = object({ desired = number, min = number, max = number })
  default     = { desired = 2, min = 1, max = 4 }
}

variable "gpu_instance_types" {
  description = "Instance types of the GPU node group (workers with Triton): g4dn (T4) or g5 (A10G)."
  type        = list(string)
  default     = ["g4dn.xlarge"]

  validation {
    condition     = alltrue([for t in var.gpu_instance_types : can(regex("^(g4dn|g5|g6)\\.", t))])
    error_message = "gpu_instance_types must be g4dn.*, g5.* or g6.* instance types."
  }
}

variable "gpu_ami_type" {
  description = "AMI type of the GPU node group: AL2_x86_64_GPU (NVIDIA driver and container toolkit preinstalled; Kubernetes <= 1.32) or AL2023_x86_64_NVIDIA."
  type        = string
  default     = "AL2_x86_64_GPU"

  validation {
    condition     = contains(["AL2_x86_64_GPU", "AL2023_x86_64_NVIDIA"], var.gpu_ami_type)
    error_message = "gpu_ami_type must be AL2_x86_64_GPU or AL2023_x86_64_NVIDIA."
  }
}

variable "gpu_node_count" {
  description = "Desired, minimum and maximum size of the GPU node group (one worker pod per GPU node)."
  type        = object({ desired = number, min = number, max = number })
  default     = { desired = 2, min = 0, max = 4 }
}

variable "gpu_node_disk_gb" {
  description = "Root volume of GPU nodes in GB (the Triton image alone is over 10 GB)."
  type        = number
  default     = 100
}

variable "cluster_endpoint_public_access_cidrs" {
  description = "CIDRs allowed to reach the public Kubernetes API endpoint."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = { Project = "smart-routing" }
}
