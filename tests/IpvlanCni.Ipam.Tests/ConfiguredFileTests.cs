using System.Diagnostics;
using IpvlanCni.Cni;

namespace IpvlanCni.Ipam.Tests;

/// <summary>ipam.resolvConf is typed through O_PATH before it is opened: a FIFO is never opened, a device never read.</summary>
public class ConfiguredFileTests
{
    [Fact]
    public void A_fifo_as_resolv_conf_is_refused_without_being_opened()
    {
        var folder = Directory.CreateTempSubdirectory().FullName;
        try
        {
            string fifo = Path.Combine(folder, "fifo");
            using (var mkfifo = Process.Start(new ProcessStartInfo("mkfifo", [fifo]) { UseShellExecute = false })!)
                mkfifo.WaitForExit();
            // Blocks in open(2) until someone opens the FIFO for reading.
            var writer = Task.Run(() => { using var stream = new FileStream(fifo, FileMode.Open, FileAccess.Write); });
            Thread.Sleep(100);
            var clock = Stopwatch.StartNew();
            var e = Assert.Throws<CniException>(() => ResolvConf.Parse(fifo));
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"took {clock.Elapsed}");
            Assert.Equal(CniErrorCode.InvalidNetworkConfig, e.Code);
            Assert.Contains("ipam.resolvConf", e.Message);
            Assert.Contains("is not a regular file", e.Message);
            Thread.Sleep(300);
            Assert.False(writer.IsCompleted, "resolvConf opened the FIFO (its writer's open returned)");
            using (new FileStream(fifo, FileMode.Open, FileAccess.Read)) { } // lets the writer go
            writer.Wait();
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Theory]
    [InlineData("/dev/zero")]
    [InlineData("/dev/null")]
    [InlineData("/proc/self")]
    public void A_device_or_folder_as_resolv_conf_is_code_7(string path)
    {
        var e = Assert.Throws<CniException>(() => ResolvConf.Parse(path));
        Assert.Equal(CniErrorCode.InvalidNetworkConfig, e.Code);
        Assert.Contains("is not a regular file", e.Message);
    }
}
