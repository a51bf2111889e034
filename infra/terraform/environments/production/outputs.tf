output "api_url" {
  value = module.yolodrop.api_url
}

output "function_urls" {
  value = module.yolodrop.function_urls
}

output "ingest_subscription" {
  value = module.yolodrop.ingest_subscription
}

output "image_repository" {
  value = module.yolodrop.image_repository
}

output "dead_letter_subscriptions" {
  value = module.yolodrop.dead_letter_subscriptions
}
