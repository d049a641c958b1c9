// `ipvlan-cni install ...` and `ipvlan-cni uninstall ...` exec this executable with "install" or "uninstall" first.
switch (args)
{
    case ["install", .. var rest]:
        return IpvlanCni.Install.InstallCommand.Run(rest);
    case ["uninstall", .. var rest]:
        return IpvlanCni.Install.UninstallCommand.Run(rest);
    default:
        IpvlanCni.Install.CommandLine.Error.WriteLine("usage: ipvlan-cni install|uninstall [OPTION]... (ipvlan-cni execs this)");
        return IpvlanCni.Install.CommandLine.UsageExitCode;
}
