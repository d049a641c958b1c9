using IpvlanCni.Interop;

namespace IpvlanCni.Plugin;

/// <summary>`ipvlan-cni agent|ipam ...`: becomes ipvlan-cni-agent from the same folder, with the same arguments and PID.</summary>
public static class AgentExec
{
    public const string AgentExecutable = "ipvlan-cni-agent";

    public static int Run(string[] args)
    {
        string path = Path.Combine(Path.GetDirectoryName(Environment.ProcessPath) ?? "/", AgentExecutable);
        try
        {
            Libc.Exec(path, [path, .. args]);
        }
        catch (SystemCallException e)
        {
            Console.Error.WriteLine($"ipvlan-cni {args[0]}: cannot run {path}: {e.Message} (it is installed beside ipvlan-cni)");
        }
        return 127;
    }
}
