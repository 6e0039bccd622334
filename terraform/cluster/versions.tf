terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # terraform-aws-modules/eks 20.x needs aws >= 5.95 and < 6.
      version = ">= 5.95, < 6.0"
    }
  }

  # State stays local by default (terraform/helm reads it from ../cluster/terraform.tfstate). For a
  # team, use a remote backend instead, e.g.:
  # backend "s3" {
  #   bucket = "my-terraform-state"
  #   key    = "smart-routing/cluster.tfstate"
  #   region = "eu-west-1"
  # }
}
