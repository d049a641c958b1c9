using IpvlanCni.Cni;
using IpvlanCni.Install;
using IpvlanCni.Interop;
using IpvlanCni.Plugin;

namespace IpvlanCni;

/// <summary>
/// What a first argument can name. A runtime runs the CNI plugin with no arguments, so none of this is on its path.
/// One line per subcommand in <see cref="All"/>: its name, its line in --help, and what runs it.
/// </summary>
static class Subcommands
{
    sealed record Subcommand(string Name, string Summary, Func<string[], int> Run);

    static readonly Subcommand[] All =
    [
        // Their own executables beside this one: linked in, their code would be resident in every plugin run (the
        // summaries are constants: no installer code comes with them).
        new("install", InstallCommand.Summary, args => Libc.ExecCompanion("ipvlan-cni-install", ["install", .. args])),
        new("uninstall", UninstallCommand.Summary, args => Libc.ExecCompanion("ipvlan-cni-install", ["uninstall", .. args])),
        new("agent", "run the node agent (DHCP leases, cluster IPAM on etcd) in the foreground", args => Libc.ExecCompanion("ipvlan-cni-agent", ["agent", .. args])),
        new("ipam", "show, check, release or forget cluster IPAM allocations in etcd", args => Libc.ExecCompanion("ipvlan-cni-agent", ["ipam", .. args])),
        new("explain", "explain why a pod (or the node) can or cannot reach an address, hop by hop through ipvlan", args => Libc.ExecCompanion("ipvlan-cni-explain", args)),
        new("VERSION", "print the CNI spec versions the plugin supports, as CNI_COMMAND=VERSION does", CniVersion),
    ];

    public static Func<string[], int>? Find(string name) => name switch
    {
        "--help" or "-h" or "help" => Help,
        "--version" => PrintVersion,
        _ => All.FirstOrDefault(s => s.Name == name)?.Run,
    };

    static int Help(string[] args)
    {
        var o = CommandLine.Out;
        o.WriteLine("Usage: ipvlan-cni [SUBCOMMAND [OPTION]...]");
        o.WriteLine();
        o.WriteLine("Run with no arguments, ipvlan-cni is a CNI plugin (type \"ipvlan-cni\") that attaches pods to a node's");
        o.WriteLine("NIC with Linux ipvlan: the runtime passes CNI_COMMAND and the other CNI_* variables in the environment");
        o.WriteLine("and the network configuration on stdin (CNI spec 1.1.0 and every version back to 0.3.0).");
        o.WriteLine();
        o.WriteLine("Subcommands:");
        foreach (var subcommand in All)
            o.WriteLine($"  {subcommand.Name,-11} {subcommand.Summary}");
        o.WriteLine();
        o.WriteLine("Options:");
        o.WriteLine("  -h, --help   print this help; 'ipvlan-cni SUBCOMMAND --help' prints a subcommand's");
        o.WriteLine("  --version    print the version");
        return 0;
    }

    static int PrintVersion(string[] args)
    {
        CommandLine.Out.WriteLine($"ipvlan-cni {CommandLine.Version}");
        return 0;
    }

    /// <summary>The plugin's own VERSION answer, for `ipvlan-cni VERSION` typed by hand or given to a container.</summary>
    static int CniVersion(string[] args)
    {
        var environment = new Dictionary<string, string>(StringComparer.Ordinal) { ["CNI_COMMAND"] = "VERSION" };
        using var stdout = StandardStream.OpenOutput();
        return CniDispatcher.Run(new IpvlanPlugin(), environment, Stream.Null, stdout);
    }
}
