# EFS file system for the chart's ReadWriteMany volumes: the model repository (workers on several
# nodes, the uploader and the dispatcher share it) and the log collector's run logs. terraform/helm
# creates the "efs-sc" StorageClass on it.
resource "aws_efs_file_system" "shared" {
  creation_token   = "${var.cluster_name}-shared"
  encrypted        = true
  performance_mode = "generalPurpose"
  # Elastic throughput: model loads read hundreds of MB in bursts.
  throughput_mode = "elastic"

  tags = { Name = "${var.cluster_name}-shared" }
}

resource "aws_security_group" "efs" {
  name_prefix = "${var.cluster_name}-efs-"
  description = "NFS from the cluster's VPC to EFS"
  vpc_id      = module.vpc.vpc_id

  ingress {
    description = "NFS"
    from_port   = 2049
    to_port     = 2049
    protocol    = "tcp"
    cidr_blocks = [module.vpc.vpc_cidr_block]
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_efs_mount_target" "shared" {
  count = length(module.vpc.private_subnets)

  file_system_id  = aws_efs_file_system.shared.id
  subnet_id       = module.vpc.private_subnets[count.index]
  security_groups = [aws_security_group.efs.id]
}
