using System.Text.RegularExpressions;

namespace IpvlanCni.Bench;

/// <summary>What one plugin run asked of rtnetlink: sockets opened, send calls (round trips) and messages sent.</summary>
public sealed record NetlinkCount(int Sockets, int Sends, int Messages)
{
    public override string ToString() => $"{Messages} msgs/{Sends} sends/{Sockets} socks";
}

/// <summary>
/// Counts a plugin's netlink traffic with strace, the same way for both plugins and for every child they start
/// (-f): every sendto/sendmsg on a netlink socket is one round trip, every nlmsghdr in it one message.
/// </summary>
public static partial class NetlinkTrace
{
    public const string Strace = "/usr/bin/strace";

    public static NetlinkCount Count(PluginUnderTest plugin, string command, string containerId, string netns, string traceFile)
    {
        var exited = Spawner.Wait(Spawner.Start(Strace, ["-f", "-qq", "-yy", "-e", "trace=socket,sendto,sendmsg", "-o", traceFile, plugin.Path],
            plugin.Environment(command, containerId, netns), plugin.ConfigPath, "/dev/null"));
        if (exited.ExitCode != 0)
            throw new InvalidOperationException($"{plugin.Label} {command} under strace failed (exit {exited.ExitCode})");
        int sockets = 0, sends = 0, messages = 0;
        foreach (string line in File.ReadLines(traceFile))
        {
            if (line.Contains("socket(AF_NETLINK") && line.Contains("NETLINK_ROUTE"))
                sockets++;
            else if (SendCall().IsMatch(line) && line.Contains("NETLINK"))
            {
                sends++;
                messages += MessageHeader().Count(line);
            }
        }
        return new NetlinkCount(sockets, sends, messages);
    }

    // "1234  sendto(9<NETLINK:[396]>, [{nlmsg_len=40, ..." (not "<... sendto resumed>")
    [GeneratedRegex(@"^\d+\s+send(to|msg)\(")]
    private static partial Regex SendCall();

    [GeneratedRegex(@"nlmsg_len=")]
    private static partial Regex MessageHeader();
}
