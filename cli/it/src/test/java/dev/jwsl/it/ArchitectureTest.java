package dev.jwsl.it;

import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.lang.ArchRule;
import dev.jwsl.cli.ClientReachingIntoTheServiceProbe;
import dev.jwsl.hypervisor.boot.BootUsingGeneratedBindingsProbe;
import dev.jwsl.hypervisor.kvm.KvmReachingUpProbe;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.List;

import static com.tngtech.archunit.base.DescribedPredicate.not;
import static com.tngtech.archunit.core.domain.JavaClass.Predicates.resideInAPackage;
import static com.tngtech.archunit.core.domain.JavaClass.Predicates.resideInAnyPackage;
import static com.tngtech.archunit.core.domain.JavaClass.Predicates.type;
import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.classes;
import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;
import static com.tngtech.archunit.library.Architectures.layeredArchitecture;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * The intended dependencies between jwsl's modules and packages, checked on the compiled classes
 * of the product (hypervisor, protocol, client, service): a new arrow against them fails here.
 * Each rule is also shown to catch a probe class (test sources only) that breaks it, so a rule
 * that matches nothing cannot pass unnoticed.
 */
class ArchitectureTest {
    private static final String HV = "dev.jwsl.hypervisor";

    /**
     * The VMM's layers, lowest first: sys ← kvm ← memory ← virtio ← devices ← snapshot ← vmm, with boot beside
     * the devices (it needs only kvm and memory). Generated bindings are reached only through the
     * hand-written kvm and sys classes.
     */
    static final ArchRule HYPERVISOR_LAYERS = layeredArchitecture().consideringOnlyDependenciesInLayers()
            .layer("generated").definedBy(HV + ".kvm.generated")
            .layer("sys").definedBy(HV + ".sys..")
            .layer("kvm").definedBy(HV + ".kvm")
            .layer("memory").definedBy(HV + ".memory..")
            .layer("virtio").definedBy(HV + ".virtio..")
            .layer("devices").definedBy(HV + ".devices..")
            .layer("boot").definedBy(HV + ".boot..")
            .layer("snapshot").definedBy(HV + ".snapshot..")
            .layer("vmm").definedBy(HV + ".vmm..")
            .layer("p9").definedBy(HV + ".p9..")
            .layer("net").definedBy(HV + ".net..")
            .whereLayer("generated").mayOnlyBeAccessedByLayers("kvm", "sys")
            .whereLayer("sys").mayOnlyAccessLayers("generated")
            .whereLayer("kvm").mayOnlyAccessLayers("sys", "generated")
            .whereLayer("memory").mayOnlyAccessLayers("sys", "kvm")
            .whereLayer("virtio").mayOnlyAccessLayers("sys", "kvm", "memory")
            .whereLayer("devices").mayOnlyAccessLayers("sys", "kvm", "memory", "virtio", "p9", "net")
            .whereLayer("boot").mayOnlyAccessLayers("sys", "kvm", "memory")
            .whereLayer("p9").mayOnlyAccessLayers("sys", "memory")
            .whereLayer("net").mayOnlyAccessLayers("sys", "memory")
            .whereLayer("snapshot").mayOnlyAccessLayers("sys", "kvm", "memory", "virtio", "devices")
            .whereLayer("vmm").mayNotBeAccessedByAnyLayer()
            .because("each layer of the VMM builds only on those below it");

    /** The 9P server is reached, inside the VMM, only by the virtio-9p device. */
    static final ArchRule P9_ONLY_BY_ITS_DEVICE = noClasses()
            .that().resideInAPackage(HV + "..")
            .and().resideOutsideOfPackages(HV + ".p9..", HV + ".devices.virtio.p9..")
            .should().dependOnClassesThat().resideInAPackage(HV + ".p9..")
            .because("p9 is the virtio-9p device's backend");

    /**
     * The user-mode network is reached, inside the VMM, only by the virtio-net device; vmm may name
     * its configuration value, which a VmConfig carries.
     */
    static final ArchRule NET_ONLY_BY_ITS_DEVICE = noClasses()
            .that().resideInAPackage(HV + "..")
            .and().resideOutsideOfPackages(HV + ".net..", HV + ".devices.virtio.net..")
            .should().dependOnClassesThat(resideInAPackage(HV + ".net..")
                    .and(not(type(dev.jwsl.hypervisor.net.NetConfig.class))))
            .because("net is the virtio-net device's backend");

    /** The VMM knows nothing of the programs built on it. */
    static final ArchRule HYPERVISOR_STANDS_ALONE = noClasses()
            .that().resideInAPackage(HV + "..")
            .should().dependOnClassesThat().resideInAnyPackage("dev.jwsl.cli..", "dev.jwsl.service..",
                    "dev.jwsl.protocol..", "dev.jwsl.bench..")
            .because("the hypervisor module is below the host programs");

    /** What the client and the service share is the protocol, which depends on nothing of jwsl's. */
    static final ArchRule PROTOCOL_STANDS_ALONE = classes()
            .that().resideInAPackage("dev.jwsl.protocol..")
            .should().onlyDependOnClassesThat(not(resideInAPackage("dev.jwsl..")).or(resideInAPackage("dev.jwsl.protocol..")))
            .because("the protocol module is all the client and the service have in common");

    /** The wsl client loads no service and no VMM code: only its own, the protocol's and libraries. */
    static final ArchRule CLIENT_APART = noClasses()
            .that().resideInAPackage("dev.jwsl.cli..")
            .should().dependOnClassesThat(resideInAnyPackage("dev.jwsl.service..", HV + "..", "io.netty.."))
            .because("every wsl call starts a JVM: the client's class path is the client and the protocol");

    /** The service never depends on the client. */
    static final ArchRule SERVICE_APART = noClasses()
            .that().resideInAPackage("dev.jwsl.service..")
            .should().dependOnClassesThat().resideInAPackage("dev.jwsl.cli..")
            .because("client and service share only the protocol module");

    static final List<ArchRule> RULES = List.of(HYPERVISOR_LAYERS, P9_ONLY_BY_ITS_DEVICE, NET_ONLY_BY_ITS_DEVICE,
            HYPERVISOR_STANDS_ALONE, PROTOCOL_STANDS_ALONE, CLIENT_APART, SERVICE_APART);

    private static JavaClasses product;

    @BeforeAll
    static void importProduct() {
        // The product's classes only: this module's test classes (the probes among them) and the
        // test jars on the class path are not part of the architecture.
        ImportOption mainOnly = location -> !location.contains("/test-classes/") && !location.contains("-tests.jar");
        product = new ClassFileImporter().withImportOption(mainOnly).importPackages("dev.jwsl");
    }

    @Test
    void theProductKeepsEveryRule() {
        for (ArchRule rule : RULES) {
            rule.check(product);
        }
    }

    @Test
    void theImportSeesEveryModule() {
        for (String pkg : List.of(HV + ".kvm", HV + ".kvm.generated", HV + ".vmm", HV + ".p9", "dev.jwsl.protocol",
                "dev.jwsl.cli", "dev.jwsl.service")) {
            assertEquals(true, product.containPackage(pkg), pkg + " imported");
        }
    }

    @Test
    void aClientClassUsingTheServiceBreaksTheRules() {
        JavaClasses probe = new ClassFileImporter().importClasses(ClientReachingIntoTheServiceProbe.class);
        assertThrows(AssertionError.class, () -> CLIENT_APART.check(probe));
    }

    @Test
    void kvmReachingUpToMemoryBreaksTheLayers() {
        JavaClasses probe = new ClassFileImporter().importClasses(KvmReachingUpProbe.class);
        assertThrows(AssertionError.class, () -> HYPERVISOR_LAYERS.check(probe));
    }

    @Test
    void bootUsingGeneratedBindingsBreaksTheLayers() {
        JavaClasses probe = new ClassFileImporter().importClasses(BootUsingGeneratedBindingsProbe.class);
        assertThrows(AssertionError.class, () -> HYPERVISOR_LAYERS.check(probe));
    }
}
