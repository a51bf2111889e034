variable "project" {
  type = string
}

variable "region" {
  type = string
}

variable "bucket" {
  type = string
}

variable "bucket_location" {
  type    = string
  default = null
}

variable "firestore_location" {
  type    = string
  default = null
}

variable "trainer_region" {
  type = string
}

variable "trainer_gpu_type" {
  type    = string
  default = "nvidia-l4"
}

variable "trainer_image" {
  type = string
}

variable "importer_image" {
  type = string
}

variable "api_token" {
  type      = string
  sensitive = true
}
