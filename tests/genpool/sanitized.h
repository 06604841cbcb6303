// GP_SANITIZED: 1 in ASan and TSan builds, whose gen_pool tests run fewer iterations.
#pragma once

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define GP_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define GP_SANITIZED 1
#endif
#endif
#ifndef GP_SANITIZED
#define GP_SANITIZED 0
#endif
