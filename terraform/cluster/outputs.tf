output "region" {
  description = "AWS region of the cluster."
  value       = var.region
}

output "cluster_name" {
  description = "EKS cluster name."
  value       = module.eks.cluster_name
}

output "cluster_endpoint" {
  description = "Kubernetes API endpoint."
  value       = module.eks.cluster_endpoint
}

output "cluster_certificate_authority_data" {
  description = "Base64 CA certificate of the Kubernetes API."
  value       = module.eks.cluster_certificate_authority_data
}

output "efs_file_system_id" {
  description = "EFS file system behind the efs-sc StorageClass."
  value       = aws_efs_file_system.shared.id
}

output "ecr_registry" {
  description = "ECR registry host: the chart's image.registry."
  value       = split("/", aws_ecr_repository.image["dispatcher"].repository_url)[0]
}

output "ecr_repositories" {
  description = "Repository URL of each image."
  value       = { for name, repo in aws_ecr_repository.image : name => repo.repository_url }
}

output "configure_kubectl" {
  description = "Command that points kubectl at the cluster."
  value       = "aws eks update-kubeconfig --region ${var.region} --name ${module.eks.cluster_name}"
}
