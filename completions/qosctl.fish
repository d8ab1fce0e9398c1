complete --keep-order --exclusive --command qosctl --arguments "(COMPLETE=fish qosctl -- (commandline --current-process --tokenize --cut-at-cursor) (commandline --current-token))"
