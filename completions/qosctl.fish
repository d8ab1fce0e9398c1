# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_qosctl_global_optspecs
    string join \n netns= tc= h/help V/version
end

function __fish_qosctl_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_qosctl_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_qosctl_using_subcommand
    set -l cmd (__fish_qosctl_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c qosctl -n "__fish_qosctl_needs_command" -l netns -d 'Act inside the named network namespace (runs `tc -n NAME`)' -r
complete -c qosctl -n "__fish_qosctl_needs_command" -l tc -d 'The tc binary to run [default: `tc` found on PATH]' -r -F
complete -c qosctl -n "__fish_qosctl_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c qosctl -n "__fish_qosctl_needs_command" -s V -l version -d 'Print version'
complete -c qosctl -n "__fish_qosctl_needs_command" -f -a "check" -d 'Validate a policy and print the resolved tree. Needs neither root nor tc'
complete -c qosctl -n "__fish_qosctl_needs_command" -f -a "apply" -d 'Make the interfaces of a policy match it, changing only what differs'
complete -c qosctl -n "__fish_qosctl_needs_command" -f -a "show" -d 'Show the live qdiscs, classes and filters with their counters'
complete -c qosctl -n "__fish_qosctl_needs_command" -f -a "watch" -d 'Stay running and re-apply a policy when its devices appear, are re-created or come up, when the policy file changes, and on SIGHUP'
complete -c qosctl -n "__fish_qosctl_needs_command" -f -a "confirm" -d 'Keep the changes of a pending `apply --confirm-within`, or roll them back now'
complete -c qosctl -n "__fish_qosctl_needs_command" -f -a "reset" -d 'Remove what qosctl manages (root and ingress qdiscs) from interfaces, returning them to the kernel default'
complete -c qosctl -n "__fish_qosctl_needs_command" -f -a "import" -d 'Write a policy (to stdout) that reproduces the live traffic control of devices'
complete -c qosctl -n "__fish_qosctl_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c qosctl -n "__fish_qosctl_using_subcommand check" -l netns -d 'Act inside the named network namespace (runs `tc -n NAME`)' -r
complete -c qosctl -n "__fish_qosctl_using_subcommand check" -l tc -d 'The tc binary to run [default: `tc` found on PATH]' -r -F
complete -c qosctl -n "__fish_qosctl_using_subcommand check" -l json -d 'Print the resolved model as JSON'
complete -c qosctl -n "__fish_qosctl_using_subcommand check" -s q -l quiet -d 'Print nothing when the policy is valid: only errors, and the exit code (for pre-commit hooks and CI)'
complete -c qosctl -n "__fish_qosctl_using_subcommand check" -s h -l help -d 'Print help'
complete -c qosctl -n "__fish_qosctl_using_subcommand check" -s V -l version -d 'Print version'
complete -c qosctl -n "__fish_qosctl_using_subcommand apply" -l confirm-within -d 'Roll the change back to the state read before it unless `qosctl confirm` runs within this time (e.g. 60s), also when the session that started it dies' -r
complete -c qosctl -n "__fish_qosctl_using_subcommand apply" -l state -d 'With --dry-run: plan against saved state instead of the kernel. FILE is what `qosctl show --json` printed on the target host; `empty` plans from the kernel default. Runs no tc and needs no root; a device not in FILE is planned as fresh' -r -F
complete -c qosctl -n "__fish_qosctl_using_subcommand apply" -l netns -d 'Act inside the named network namespace (runs `tc -n NAME`)' -r
complete -c qosctl -n "__fish_qosctl_using_subcommand apply" -l tc -d 'The tc binary to run [default: `tc` found on PATH]' -r -F
complete -c qosctl -n "__fish_qosctl_using_subcommand apply" -l dry-run -d 'Print the plan and change nothing. Works without root'
complete -c qosctl -n "__fish_qosctl_using_subcommand apply" -l detailed-exitcode -d 'Exit 0 when in sync, 2 when changes are pending (or were applied), 1 on error'
complete -c qosctl -n "__fish_qosctl_using_subcommand apply" -l json -d 'Print the plan (and result) as JSON'
complete -c qosctl -n "__fish_qosctl_using_subcommand apply" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c qosctl -n "__fish_qosctl_using_subcommand apply" -s V -l version -d 'Print version'
complete -c qosctl -n "__fish_qosctl_using_subcommand show" -s p -l policy -d 'Show the class names and policy rates of this policy beside the live values' -r -F
complete -c qosctl -n "__fish_qosctl_using_subcommand show" -l netns -d 'Act inside the named network namespace (runs `tc -n NAME`)' -r
complete -c qosctl -n "__fish_qosctl_using_subcommand show" -l tc -d 'The tc binary to run [default: `tc` found on PATH]' -r -F
complete -c qosctl -n "__fish_qosctl_using_subcommand show" -l json -d 'Print JSON instead of tables'
complete -c qosctl -n "__fish_qosctl_using_subcommand show" -s h -l help -d 'Print help'
complete -c qosctl -n "__fish_qosctl_using_subcommand show" -s V -l version -d 'Print version'
complete -c qosctl -n "__fish_qosctl_using_subcommand watch" -l netns -d 'Act inside the named network namespace (runs `tc -n NAME`)' -r
complete -c qosctl -n "__fish_qosctl_using_subcommand watch" -l tc -d 'The tc binary to run [default: `tc` found on PATH]' -r -F
complete -c qosctl -n "__fish_qosctl_using_subcommand watch" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c qosctl -n "__fish_qosctl_using_subcommand watch" -s V -l version -d 'Print version'
complete -c qosctl -n "__fish_qosctl_using_subcommand confirm" -l netns -d 'Act inside the named network namespace (runs `tc -n NAME`)' -r
complete -c qosctl -n "__fish_qosctl_using_subcommand confirm" -l tc -d 'The tc binary to run [default: `tc` found on PATH]' -r -F
complete -c qosctl -n "__fish_qosctl_using_subcommand confirm" -l rollback -d 'Roll the pending change back now instead of keeping it'
complete -c qosctl -n "__fish_qosctl_using_subcommand confirm" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c qosctl -n "__fish_qosctl_using_subcommand confirm" -s V -l version -d 'Print version'
complete -c qosctl -n "__fish_qosctl_using_subcommand reset" -l dev -d 'Reset these devices' -r
complete -c qosctl -n "__fish_qosctl_using_subcommand reset" -l netns -d 'Act inside the named network namespace (runs `tc -n NAME`)' -r
complete -c qosctl -n "__fish_qosctl_using_subcommand reset" -l tc -d 'The tc binary to run [default: `tc` found on PATH]' -r -F
complete -c qosctl -n "__fish_qosctl_using_subcommand reset" -s h -l help -d 'Print help'
complete -c qosctl -n "__fish_qosctl_using_subcommand reset" -s V -l version -d 'Print version'
complete -c qosctl -n "__fish_qosctl_using_subcommand import" -l netns -d 'Act inside the named network namespace (runs `tc -n NAME`)' -r
complete -c qosctl -n "__fish_qosctl_using_subcommand import" -l tc -d 'The tc binary to run [default: `tc` found on PATH]' -r -F
complete -c qosctl -n "__fish_qosctl_using_subcommand import" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c qosctl -n "__fish_qosctl_using_subcommand import" -s V -l version -d 'Print version'
complete -c qosctl -n "__fish_qosctl_using_subcommand help; and not __fish_seen_subcommand_from check apply show watch confirm reset import help" -f -a "check" -d 'Validate a policy and print the resolved tree. Needs neither root nor tc'
complete -c qosctl -n "__fish_qosctl_using_subcommand help; and not __fish_seen_subcommand_from check apply show watch confirm reset import help" -f -a "apply" -d 'Make the interfaces of a policy match it, changing only what differs'
complete -c qosctl -n "__fish_qosctl_using_subcommand help; and not __fish_seen_subcommand_from check apply show watch confirm reset import help" -f -a "show" -d 'Show the live qdiscs, classes and filters with their counters'
complete -c qosctl -n "__fish_qosctl_using_subcommand help; and not __fish_seen_subcommand_from check apply show watch confirm reset import help" -f -a "watch" -d 'Stay running and re-apply a policy when its devices appear, are re-created or come up, when the policy file changes, and on SIGHUP'
complete -c qosctl -n "__fish_qosctl_using_subcommand help; and not __fish_seen_subcommand_from check apply show watch confirm reset import help" -f -a "confirm" -d 'Keep the changes of a pending `apply --confirm-within`, or roll them back now'
complete -c qosctl -n "__fish_qosctl_using_subcommand help; and not __fish_seen_subcommand_from check apply show watch confirm reset import help" -f -a "reset" -d 'Remove what qosctl manages (root and ingress qdiscs) from interfaces, returning them to the kernel default'
complete -c qosctl -n "__fish_qosctl_using_subcommand help; and not __fish_seen_subcommand_from check apply show watch confirm reset import help" -f -a "import" -d 'Write a policy (to stdout) that reproduces the live traffic control of devices'
complete -c qosctl -n "__fish_qosctl_using_subcommand help; and not __fish_seen_subcommand_from check apply show watch confirm reset import help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
