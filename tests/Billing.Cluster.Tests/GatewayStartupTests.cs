namespace Billing.Cluster.Tests;

/// <summary>The gateway as a process: a setting that cannot work stops it in one line, as it does the silo.</summary>
public sealed class GatewayStartupTests
{
    [Theory]
    [InlineData(null, "ConnectionStrings:Billing is not set")]
    [InlineData("Host=127.0.0.1;Port=1;Username=billing;Database=billing", "Auth:SigningKey is not set")]
    public async Task ReviewDefect_Outside_Development_the_gateway_refuses_to_start_without_its_settings_in_one_line(string? connectionString, string message)
    {
        await using var gateway = ChildProcess.StartDotnet("gateway-unconfigured", Artifacts.GatewayDll, ["--urls", $"http://127.0.0.1:{PostgresServer.FreePort()}"],
            new Dictionary<string, string?>
            {
                ["ASPNETCORE_ENVIRONMENT"] = "Production",
                ["DOTNET_ENVIRONMENT"] = "Production",
                ["ConnectionStrings__Billing"] = connectionString,
                ["Auth__SigningKey"] = null,
            });
        Assert.True(await gateway.WaitForExitAsync(TimeSpan.FromSeconds(60)), gateway.Tail());

        Assert.Contains(message, gateway.Output);
        // Before: an unhandled exception, its stack trace and an abort (134).
        Assert.Equal(1, gateway.ExitCode);
        Assert.DoesNotContain("Unhandled exception", gateway.Output);
        Assert.DoesNotContain("   at ", gateway.Output);
    }

    [Fact]
    public async Task Two_settings_that_cannot_work_are_each_said_in_a_line_and_exit_1()
    {
        await using var gateway = ChildProcess.StartDotnet("gateway-misconfigured", Artifacts.GatewayDll, ["--urls", $"http://127.0.0.1:{PostgresServer.FreePort()}"],
            new Dictionary<string, string?>
            {
                ["ASPNETCORE_ENVIRONMENT"] = "Production",
                ["DOTNET_ENVIRONMENT"] = "Production",
                ["ConnectionStrings__Billing"] = "Host=127.0.0.1;Port=1;Username=billing;Database=billing",
                ["Auth__SigningKey"] = null,
                ["Gateway__DrainTimeoutSeconds"] = "1000",
            });
        Assert.True(await gateway.WaitForExitAsync(TimeSpan.FromSeconds(60)), gateway.Tail());

        // Validated together, the two failures come as one AggregateException: before, a crash (134) with its trace.
        Assert.Contains("Auth:SigningKey is not set", gateway.Output);
        Assert.Contains("DrainTimeoutSeconds", gateway.Output);
        Assert.Equal(1, gateway.ExitCode);
        Assert.DoesNotContain("   at ", gateway.Output);
    }
}
