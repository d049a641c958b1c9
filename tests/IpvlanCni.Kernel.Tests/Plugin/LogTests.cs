using IpvlanCni.Kernel.Tests.Support;

namespace IpvlanCni.Kernel.Tests.Plugin;

public class LogTests : KernelTest
{
    [Fact]
    public void LogFile_gets_one_line_per_command_with_container_duration_and_outcome()
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        string log = $"/tmp/{node.Name}/plugin.log";
        var config = cni.Config("logged", "10.10.0.0/24").With("logFile", log);
        var pod = node.AddPod();

        var added = cni.Add(config, pod, "c1").Succeeded();
        cni.Add(config, pod, "c1").FailedWith(104);
        cni.Check(config, pod, "c1", added).Succeeded();
        cni.Status(config).Succeeded();
        cni.Gc(config, ("c1", "eth0")).Succeeded();
        cni.Del(config, pod, "c1").Succeeded();

        var lines = File.ReadAllLines(log);
        Assert.Equal(6, lines.Length);
        string[] commands = ["ADD", "ADD", "CHECK", "STATUS", "GC", "DEL"];
        for (int i = 0; i < lines.Length; i++)
        {
            Assert.Matches($@"^\d{{4}}-\d\d-\d\dT\S+Z {commands[i]} ", lines[i]);
            Assert.Matches(@" duration_ms=\d+ ", lines[i]);
            Assert.Contains("network=logged", lines[i]);
        }
        Assert.All(new[] { lines[0], lines[1], lines[2], lines[5] }, line => Assert.Contains("container=c1 ifname=eth0", line));
        Assert.EndsWith(" ok", lines[0]);
        Assert.Contains(" error code=104 msg=", lines[1]);
        Assert.All(lines.Where((_, i) => i != 1), line => Assert.EndsWith(" ok", line));
    }
}
