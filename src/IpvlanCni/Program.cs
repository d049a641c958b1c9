// The executable a container runtime calls: everything lives in the plugin library. Runtimes call a CNI plugin
// with no arguments; a first argument names an operator's subcommand, which the CNI path never loads.
IpvlanCni.Interop.Libc.UseSingleMallocArena();
return args switch
{
    ["explain", .. var rest] => IpvlanCni.Explain.ExplainCommand.Run(rest),
    _ => IpvlanCni.Plugin.PluginMain.Run(args),
};
