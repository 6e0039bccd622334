# One ECR repository per image the chart runs (built from <package>/Dockerfile).
locals {
  images = ["dispatcher", "worker", "log-collector", "uploader"]
}

resource "aws_ecr_repository" "image" {
  for_each = toset(local.images)

  name                 = "smart-routing/${each.key}"
  image_tag_mutability = "MUTABLE"
  # `terraform destroy` removes the repositories with their images.
  force_delete = true

  image_scanning_configuration {
    scan_on_push = true
  }
}

resource "aws_ecr_lifecycle_policy" "image" {
  for_each = aws_ecr_repository.image

  repository = each.value.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the 20 most recent images"
      selection = {
        tagStatus   = "any"
        countType   = "imageCountMoreThan"
        countNumber = 20
      }
      action = { type = "expire" }
    }]
  })
}
