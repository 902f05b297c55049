using Billing.Hosting;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Billing.Silo.Hosting;
using Billing.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Npgsql;
using Xunit.Abstractions;

namespace Billing.Silo.Tests;

/// <summary>
/// Outside Development the silo is safe by default: no database without ConnectionStrings:Billing, no schema changes
/// (the migrate verb does them), a database role without DDL rights is enough, the dashboard apart from health and
/// behind credentials. The silo runs as a real process on the kit's throwaway PostgreSQL.
/// </summary>
public sealed class ProductionDefaultsTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Outside_Development_the_silo_refuses_to_start_without_a_connection_string()
    {
        await using var silo = SiloProcesses.Start("no-database", "Production", [$"--Silo:DashboardPort={PostgresServer.FreePort()}"]);
        Assert.True(await silo.WaitForExitAsync(TimeSpan.FromSeconds(60)), silo.Tail());
        Assert.Contains("ConnectionStrings:Billing is not set", silo.Output);
        // Said in one line with exit code 1, as a setting an operator fixes; before, an unhandled exception: a stack
        // trace and an abort (134).
        Assert.Equal(1, silo.ExitCode);
        Assert.DoesNotContain("Unhandled exception", silo.Output);
        Assert.DoesNotContain("   at ", silo.Output);
    }

    [Theory]
    [InlineData("Production", false, null)]
    [InlineData("Staging", false, null)]
    [InlineData("Development", true, "Host=127.0.0.1;Port=5433;Username=postgres;Database=billing")]
    public void Only_Development_applies_the_schema_and_has_a_default_database(string environment, bool applySchema, string? connectionString)
    {
        var configuration = SiloConfigurationTests.SiloBuilder([], environment).Configuration;
        Assert.Equal(applySchema, configuration.GetSection(BillingHostOptions.SectionName).Get<BillingHostOptions>()?.ApplySchema ?? false);
        Assert.Equal(connectionString, configuration.GetConnectionString("Billing"));
    }

    [Fact]
    public async Task A_silo_on_a_database_without_the_schema_refuses_to_start_and_names_the_migrate_step()
    {
        var database = await SiloProcesses.CreateEmptyDatabaseAsync("nomigrate");
        await using var silo = SiloProcesses.Start("unmigrated", "Production",
            [$"--Silo:DashboardPort={PostgresServer.FreePort()}", $"--Orleans:SiloPort={PostgresServer.FreePort()}", $"--Orleans:GatewayPort={PostgresServer.FreePort()}"],
            new Dictionary<string, string?> { ["ConnectionStrings__Billing"] = database });
        Assert.True(await silo.WaitForExitAsync(TimeSpan.FromSeconds(60)), silo.Tail());
        Assert.Equal(1, silo.ExitCode);
        Assert.Contains("dotnet Billing.Silo.dll migrate", silo.Output);
        Assert.Equal(0L, await SiloProcesses.ScalarAsync<long>(database, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"));
    }

    [Fact]
    public void Outside_Development_a_dashboard_port_without_credentials_fails_start_up()
    {
        var builder = SiloConfigurationTests.SiloBuilder(["--Silo:Dashboard:Port=18090"], "Production");
        var failure = Assert.Throws<StartupConfigurationException>(() => builder.AddBillingDashboardAccess()); // one line and exit code 1 (Program.cs)
        Assert.Contains("Silo:Dashboard:Username", failure.Message);
    }

    /// <summary>
    /// The production path end to end: `migrate` as the owner grants the silo's role its rights; the silo runs as that
    /// role (no DDL, not the owner, not a superuser), serves usage, keeps the ledger's invariants, and shows its dashboard
    /// only on the dashboard's port and only with the credentials.
    /// </summary>
    [Fact]
    public async Task Migrated_with_grants_the_silo_runs_as_a_role_without_ddl_rights_and_its_dashboard_needs_credentials()
    {
        var owner = await SiloProcesses.CreateEmptyDatabaseAsync("grants");
        var role = $"billing_silo_{Guid.NewGuid():N}"[..24];
        await SiloProcesses.ExecuteAsync(owner, $"CREATE ROLE {role} LOGIN PASSWORD 'silo-password' NOSUPERUSER NOCREATEDB NOCREATEROLE");

        var (code, migrateOutput) = await SiloProcesses.MigrateAsync($"--ConnectionStrings:BillingMigrations={owner}", $"--Billing:SiloRole={role}");
        Assert.True(code == 0, migrateOutput);
        Assert.Contains($"Granted role {role}", migrateOutput);

        var asSilo = new NpgsqlConnectionStringBuilder(owner) { Username = role, Password = "silo-password" }.ConnectionString;
        Assert.False(await SiloProcesses.ScalarAsync<bool>(owner, $"SELECT has_schema_privilege('{role}', 'public', 'CREATE')"));
        Assert.False(await SiloProcesses.ScalarAsync<bool>(owner, $"SELECT has_database_privilege('{role}', current_database(), 'CREATE')"));
        var ddl = await Assert.ThrowsAsync<PostgresException>(() => SiloProcesses.ExecuteAsync(asSilo, "CREATE TABLE not_allowed (id int)"));
        Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, ddl.SqlState);
        var alter = await Assert.ThrowsAsync<PostgresException>(() => SiloProcesses.ExecuteAsync(asSilo, "ALTER TABLE user_billing ADD COLUMN x int"));
        Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, alter.SqlState);

        int health = PostgresServer.FreePort(), dashboard = PostgresServer.FreePort(), gatewayPort = PostgresServer.FreePort();
        var clusterId = $"prod-{Guid.NewGuid():N}"[..16];
        await using var silo = SiloProcesses.Start("production-silo", "Production",
            [
                $"--Silo:DashboardPort={health}", $"--Silo:Dashboard:Port={dashboard}",
                "--Silo:Dashboard:Username=operator", "--Silo:Dashboard:Password=dashboard-secret",
                $"--Orleans:SiloPort={PostgresServer.FreePort()}", $"--Orleans:GatewayPort={gatewayPort}",
                "--Orleans:AdvertisedIPAddress=127.0.0.1", $"--Orleans:ClusterId={clusterId}",
            ],
            new Dictionary<string, string?> { ["ConnectionStrings__Billing"] = asSilo });
        await SiloProcesses.WaitOkAsync(silo, new Uri($"http://127.0.0.1:{health}/health/ready"), TimeSpan.FromSeconds(90));
        Assert.Contains("Schema is complete", silo.Output);

        // Usage as the restricted role: accounts, a price, a charge, all through the grains.
        await using (var client = await BillingClusterClient.StartAsync([new IPEndPoint(IPAddress.Loopback, gatewayPort)], clusterId))
        {
            var grains = client.Client;
            Guid user = Guid.NewGuid(), project = Guid.NewGuid(), model = Guid.NewGuid();
            Assert.True((await grains.GetGrain<IUserGrain>(user).Initialize()).IsOk);
            Assert.True((await grains.GetGrain<IProjectGrain>(project).Initialize(user)).IsOk);
            Assert.True((await grains.GetGrain<IModelPricingGrain>(model).AddPrice(new ModelPriceInput(3.00m, 15.00m, "USD", DateTimeOffset.UtcNow.AddMinutes(-1)))).IsOk);
            var usage = await grains.GetGrain<IUsageGrain>(0).RecordAiUsage(new AiUsage(Guid.NewGuid(), project, user, model, 1234, 567));
            Assert.True(usage.IsOk, usage.Problem?.Detail);
            Assert.Equal(0.012207m, usage.Value!.Cost);
            await LedgerInvariants.AssertHoldAsync(owner, new LedgerScope([user], [project]));
        }

        // Health answers without credentials; the dashboard never on the health port.
        var healthBase = new Uri($"http://127.0.0.1:{health}");
        var dashboardBase = new Uri($"http://127.0.0.1:{dashboard}");
        Assert.Equal(HttpStatusCode.OK, (await SiloProcesses.Http.GetAsync(new Uri(healthBase, "/health/live"))).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await SiloProcesses.Http.GetAsync(healthBase)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await SiloProcesses.Http.GetAsync(new Uri(healthBase, "/DashboardCounters"))).StatusCode);

        // The dashboard's port: 401 without or with wrong credentials, the dashboard with the right ones, no health there.
        var anonymous = await SiloProcesses.Http.GetAsync(dashboardBase);
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        Assert.Contains("Basic", anonymous.Headers.WwwAuthenticate.ToString());
        Assert.Equal(HttpStatusCode.Unauthorized, (await GetWithBasicAsync(new Uri(dashboardBase, "/DashboardCounters"), "operator", "wrong")).StatusCode);
        var page = await GetWithBasicAsync(dashboardBase, "operator", "dashboard-secret");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Contains("Orleans Dashboard", await page.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.OK, (await GetWithBasicAsync(new Uri(dashboardBase, "/DashboardCounters"), "operator", "dashboard-secret")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await GetWithBasicAsync(new Uri(dashboardBase, "/health/ready"), "operator", "dashboard-secret")).StatusCode);

        silo.Signal(ChildSignal.Terminate);
        Assert.True(await silo.WaitForExitAsync(TimeSpan.FromSeconds(60)), silo.Tail());
        output.WriteLine(silo.Tail(15));
        Assert.Equal(0, silo.ExitCode);
    }

    private static async Task<HttpResponseMessage> GetWithBasicAsync(Uri url, string user, string password)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{password}")));
        return await SiloProcesses.Http.SendAsync(request);
    }
}
