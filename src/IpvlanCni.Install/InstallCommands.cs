namespace IpvlanCni.Install;

/// <summary><c>ipvlan-cni install</c>: what a Kubernetes init container or a node's configuration tool runs.</summary>
public static class InstallCommand
{
    public const string Summary = "copy ipvlan-cni, its companions and its IPAM name into a CNI bin folder, and a conflist into a configuration folder";

    public const string Help = """
        Usage: ipvlan-cni install --bin-dir DIR --conf-dir DIR [--conflist FILE]

        Copy ipvlan-cni and the companion executables it runs (ipvlan-cni-agent, ipvlan-cni-explain,
        ipvlan-cni-install) from the folder of the running one into DIR, mode 0755, with ipvlan-cni-ipam as a
        symlink to ipvlan-cni, and (with --conflist) FILE into the configuration folder under its own name, mode
        0644. Each file is written under a temporary name in the same folder, synced and renamed into place: a
        kubelet never runs half a file, and a process still running an old executable keeps it. Names whose content
        is already current are left alone, so running it again changes nothing. The conflist is checked first, with
        the plugin's own parser.

        Options:
          --bin-dir DIR    the runtime's CNI_PATH folder, e.g. /opt/cni/bin (must exist and be writable)
          --conf-dir DIR   the runtime's configuration folder, e.g. /etc/cni/net.d (must exist and be writable)
          --conflist FILE  a conflist using type "ipvlan-cni"; its name must end in .conflist
          -h, --help       print this help

        Exit status: 0 done (or nothing to do), 2 bad command line, 3 a folder is missing, 4 a folder is not
        writable, 5 the conflist is unreadable or invalid, 1 a write failed.

        """;

    public static int Run(string[] args) => CommandLine.Run("install", Help, args, arguments =>
    {
        if (CommandLine.ParseOptions(arguments, "--bin-dir", "--conf-dir", "--conflist") is not { } options)
            return null;
        string bin = CommandLine.Required(options, "--bin-dir"), conf = CommandLine.Required(options, "--conf-dir");
        var binDir = InstallFolder.Open("--bin-dir", bin);
        var confDir = InstallFolder.Open("--conf-dir", conf);
        var conflist = options.TryGetValue("--conflist", out var file) ? Conflist.Read(file) : null;
        return Installer.Install(Installer.ReadExecutables(), binDir, confDir, conflist);
    });
}

/// <summary><c>ipvlan-cni uninstall</c>: removes what install put into the folders.</summary>
public static class UninstallCommand
{
    public const string Summary = "remove ipvlan-cni, its companions, ipvlan-cni-ipam and (with --conflist) a conflist of ours from the folders";

    public const string Help = """
        Usage: ipvlan-cni uninstall --bin-dir DIR --conf-dir DIR [--conflist NAME]

        Remove the conflist NAME from the configuration folder (only when it has a plugin of type "ipvlan-cni"),
        then ipvlan-cni-ipam, ipvlan-cni and its companions from DIR. Names already absent are reported and skipped. Pods attached
        meanwhile keep their interfaces; the runtime needs the executable back to delete them, so drain the node
        first.

        Options:
          --bin-dir DIR    the CNI bin folder install wrote to
          --conf-dir DIR   the configuration folder install wrote to
          --conflist NAME  the conflist's file name in that folder (ends in .conflist)
          -h, --help       print this help

        Exit status: 0 done, 2 bad command line, 3 a folder is missing, 4 a folder is not writable, 5 NAME is not a
        conflist of ours (nothing removed), 1 a removal failed.

        """;

    public static int Run(string[] args) => CommandLine.Run("uninstall", Help, args, arguments =>
    {
        if (CommandLine.ParseOptions(arguments, "--bin-dir", "--conf-dir", "--conflist") is not { } options)
            return null;
        string bin = CommandLine.Required(options, "--bin-dir"), conf = CommandLine.Required(options, "--conf-dir");
        var binDir = InstallFolder.Open("--bin-dir", bin);
        var confDir = InstallFolder.Open("--conf-dir", conf);
        FileName? conflist = options.TryGetValue("--conflist", out var name) ? Conflist.ParseName(name) : null;
        return Installer.Uninstall(binDir, confDir, conflist);
    });
}
