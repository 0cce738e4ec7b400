{
  "targets": [
    {
      "target_name": "vae_native",
      "sources": [
        "<!@(node -p \"require('fs').readdirSync('native/core').filter(f => f.endsWith('.cc')).map(f => 'native/core/' + f).join(' ')\")",
        "<!@(node -p \"require('fs').readdirSync('native/binding').filter(f => f.endsWith('.cc')).map(f => 'native/binding/' + f).join(' ')\")"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "native"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_CPP_EXCEPTIONS", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS", "NODE_ADDON_API_ENABLE_TYPE_CHECK_ON_AS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-O3", "-fno-math-errno", "-fno-trapping-math", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "OTHER_CPLUSPLUSFLAGS": ["-O3"]
      },
      "msvs_settings": { "VCCLCompilerTool": { "ExceptionHandling": 1, "AdditionalOptions": ["/O2"] } },
      "conditions": [
        # Never unloaded: Node dlcloses an addon when the last worker thread that loaded it
        # exits, and the shared thread pool's threads (native/core/thread_pool.cc) live on.
        ["OS=='linux'", { "ldflags": ["-Wl,-z,nodelete"] }]
      ]
    }
  ]
}
