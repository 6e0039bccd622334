provider "aws" {
  region = var.region

  default_tags {
    tags = var.tags
  }
}

data "aws_availability_zones" "available" {
  state = "available"

  filter {
    name   = "opt-in-status"
    values = ["opt-in-not-required"]
  }
}

locals {
  azs = slice(data.aws_availability_zones.available.names, 0, var.availability_zones)
}

# ---- network: private subnets for the nodes, public ones for load balancers and NAT.
module "vpc" {
  source  = "terraform-aws-modules/vpc/aws"
  version = "~> 5.21"

  name = var.cluster_name
  cidr = var.vpc_cidr
  azs  = local.azs

  private_subnets = [for i, _ in local.azs : cidrsubnet(var.vpc_cidr, 4, i)]
  public_subnets  = [for i, _ in local.azs : cidrsubnet(var.vpc_cidr, 8, 48 + i)]

  enable_nat_gateway   = true
  single_nat_gateway   = var.single_nat_gateway
  enable_dns_hostnames = true

  # Where Kubernetes puts internet-facing and internal load balancers.
  public_subnet_tags  = { "kubernetes.io/role/elb" = 1 }
  private_subnet_tags = { "kubernetes.io/role/internal-elb" = 1 }
}

# ---- EKS: a CPU node group for the dispatcher, log collector and uploader, and a GPU node group,
# tainted nvidia.com/gpu, for the worker pods (worker + Triton).
module "eks" {
  source  = "terraform-aws-modules/eks/aws"
  version = "~> 20.37"

  cluster_name    = var.cluster_name
  cluster_version = var.kubernetes_version

  vpc_id     = module.vpc.vpc_id
  subnet_ids = module.vpc.private_subnets

  cluster_endpoint_public_access       = true
  cluster_endpoint_public_access_cidrs = var.cluster_endpoint_public_access_cidrs
  # Whoever runs `terraform apply` gets cluster-admin (terraform/helm and kubectl need it).
  enable_cluster_creator_admin_permissions = true

  cluster_addons = {
    coredns                = {}
    kube-proxy             = {}
    vpc-cni                = {}
    eks-pod-identity-agent = {}
    # ReadWriteMany volumes (model repository, run logs) on EFS.
    aws-efs-csi-driver = {
      service_account_role_arn = module.efs_csi_irsa.iam_role_arn
    }
  }

  eks_managed_node_groups = {
    cpu = {
      ami_type       = "AL2023_x86_64_STANDARD"
      instance_types = var.cpu_instance_types
      desired_size   = var.cpu_node_count.desired
      min_size       = var.cpu_node_count.min
      max_size       = var.cpu_node_count.max
      labels         = { "smart-routing/pool" = "cpu" }
    }

    gpu = {
      ami_type       = var.gpu_ami_type
      instance_types = var.gpu_instance_types
      desired_size   = var.gpu_node_count.desired
      min_size       = var.gpu_node_count.min
      max_size       = var.gpu_node_count.max
      labels = {
        "smart-routing/pool" = "gpu"
        # The NVIDIA device plugin's default node affinity looks for this label (normally set by
        # Node Feature Discovery, which this cluster does not run).
        "nvidia.com/gpu.present" = "true"
      }
      # Only pods that tolerate the taint (the worker pods) land on GPU nodes.
      taints = {
        gpu = {
          key    = "nvidia.com/gpu"
          value  = "true"
          effect = "NO_SCHEDULE"
        }
      }
      block_device_mappings = {
        xvda = {
          device_name = "/dev/xvda"
          ebs = {
            volume_size           = var.gpu_node_disk_gb
            volume_type           = "gp3"
            delete_on_termination = true
          }
        }
      }
    }
  }
}

# IAM role the EFS CSI driver's controller assumes (IRSA).
module "efs_csi_irsa" {
  source  = "terraform-aws-modules/iam/aws//modules/iam-role-for-service-accounts-eks"
  version = "~> 5.55"

  role_name             = "${var.cluster_name}-efs-csi"
  attach_efs_csi_policy = true

  oidc_providers = {
    main = {
      provider_arn               = module.eks.oidc_provider_arn
      namespace_service_accounts = ["kube-system:efs-csi-controller-sa"]
    }
  }
}
